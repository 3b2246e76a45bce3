-- KEYS[1]: a subject's or client's index, which a Redis Cluster keeps apart from the grants it
-- lists. ARGV: IP gid purge_at now. Enters the grant (or keeps it) until its purge time.
index(KEYS[1], ARGV[2], ARGV[3], ARGV[4])
return 1
