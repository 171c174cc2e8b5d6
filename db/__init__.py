"""PostgreSQL, the record of truth: migrations and queries (asyncpg). SQL lives only here."""
