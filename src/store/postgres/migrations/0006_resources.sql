-- Version 6: resource indicators (RFC 8707). A grant keeps the resources it was approved for,
-- an access token its audience, a code the resources its approval covers: normalised URIs
-- separated by spaces, '' for none (what every earlier row gets).
ALTER TABLE oauth_grants ADD COLUMN resources TEXT NOT NULL DEFAULT '';
ALTER TABLE oauth_access_tokens ADD COLUMN audience TEXT NOT NULL DEFAULT '';
ALTER TABLE oauth_codes ADD COLUMN resources TEXT NOT NULL DEFAULT '';
