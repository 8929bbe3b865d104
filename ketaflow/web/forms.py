from django.forms.renderers import DjangoTemplates


class Renderer(DjangoTemplates):
    """Every field group is one block (label, help, errors, input), so form grids keep them together."""

    field_template_name = "web/field.html"
