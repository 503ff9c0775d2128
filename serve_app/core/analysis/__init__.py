"""Review analytics beyond cleaning and counting: Traditional to Simplified, PII masks,
language, sentiment, duplicates and boilerplate. Pure: no Ray, no HTTP, no pydantic."""
