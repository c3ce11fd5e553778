"""WTForms classes, one module per form family."""
