"""The Discord side of dreamloop."""
