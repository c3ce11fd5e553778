"""SPV's overview: employers at risk of being locked out, and how errands go, by channel."""
