"""City operations: load, forecasts, balancing, dispatch plans, statistics, simulation."""
