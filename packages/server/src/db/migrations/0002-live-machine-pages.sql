-- Listing pages through an org's live machines in creation order is the hottest query; a
-- partial index in exactly that order lets it stop after one page instead of sorting them all.
DROP INDEX machines_org_page;
DROP INDEX machines_owner_page;
CREATE INDEX machines_live_page ON machines (org_id, created_at, id)
  WHERE observed_state <> 'destroyed';
CREATE INDEX machines_live_owner_page ON machines (org_id, owner_id, created_at, id)
  WHERE observed_state <> 'destroyed';
