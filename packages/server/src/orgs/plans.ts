// Plans cap how many machines an org may keep. The table `plans` mirrors this list (seeded by
// migration); orgs.plan_id points at it, and operators change an org's plan in SQL for now.
export const planIds = ['free', 'team', 'scale'];
