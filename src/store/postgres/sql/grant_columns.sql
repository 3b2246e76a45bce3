g.id AS grant_id, g.client_id AS grant_client_id, g.subject AS grant_subject,
g.scope AS grant_scope, g.resources AS grant_resources, g.grant_type AS grant_type, g.created_at AS grant_created_at,
g.expires_at AS grant_expires_at, g.generation AS grant_generation
