"""Pages (Django templates) for teachers, boards of education, prefectures and municipality
administrators. Every view asks ``renkei.accounts.policy``; boards and charts are the
widgets of ``renkei.graphql.widgets`` reading the GraphQL APIs."""
