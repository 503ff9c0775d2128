"""Load tests: Locust traffic, load profiles, the headless runner and its report."""
