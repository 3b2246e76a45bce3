-- Create a grant: insert_grant.sql's parameters.
WITH /* insert_grant */
SELECT 1
