-- ARGV: IP, then create_grant's 18 arguments.
create_grant(2)
return 1
