"""The municipality GraphQL API (graphene-django): boards for school staff, schools and
aggregates for the board of education, metrics for widgets. Mounted at /graphql inside each
tenant (renkei.site.urls_tenant); see views.py for authentication and schema.py for the
root query."""
