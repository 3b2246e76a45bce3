-- ARGV: IP, then create_grant's 20 arguments.
create_grant(2)
return 1
