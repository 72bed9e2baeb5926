"""The machine as part of a studio's fleet: joining a group, applying the group's policy, reporting to it."""
