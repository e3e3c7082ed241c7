"""The output formats of ``scan``, which ``check`` reads back."""
