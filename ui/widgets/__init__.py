"""Small widgets the pages and the onboarding wizard share."""
