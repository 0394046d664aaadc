"""Workers: lease jobs, run tools and saves, report outcomes."""
