"""Who may do what: roles, memberships, API tokens, the principal and the policy.

Public schema, placed after ``renkei.tenants`` (a membership names a municipality or a
prefecture) and below every data area, which all ask :mod:`renkei.accounts.policy`.
"""
