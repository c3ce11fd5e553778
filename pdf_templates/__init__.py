"""HTML and CSS (Jinja) for every generated PDF; rendered by app.documents."""
