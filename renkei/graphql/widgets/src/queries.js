// The GraphQL documents the metric widgets send. tests/graphql/widgets/test_widget_queries.py
// reads every `export const NAME = \`...\`;` below out of this file and validates it against
// the committed schemas, so keep them plain template literals without ${...}.
//
// FEDERATION_METRIC is a template: %FIELD% is the metric's field on Prefecture (the camelCase
// of the metric name, checked against /^[a-z][a-z0-9_]*$/ first) and %FLAGS% the breakdown
// flags (", byMonth: true" ...), built only from a fixed list (see federationQuery).

export const TENANT_METRIC = `query RenkeiWidgetMetric($name: String!, $schoolYear: Int!, $breakdown: [String!], $schoolCode: String) {
  metrics { name labelJa labelEn unit descriptionJa descriptionEn dimensions categories }
  metric(name: $name, schoolYear: $schoolYear, breakdown: $breakdown, schoolCode: $schoolCode) {
    metric schoolCode schoolYear unit dimensions k
    cells { key { dimension value label labelEn } pupils value suppressed reason reasonCode numerator denominator }
  }
}`;

export const FEDERATION_METRIC = `query RenkeiWidgetFederationMetric($prefecture: String!, $schoolYear: Int!) {
  prefecture(code: $prefecture) {
    code name
    result: %FIELD%(schoolYear: $schoolYear%FLAGS%) {
      metric { name labelJa labelEn unit descriptionJa descriptionEn dimensions categories }
      schoolYear dimensions k complete
      labels { dimension code label labelEn }
      cells { key pupils value suppressed reason reasonCode numerator denominator }
      missing { code name status reason }
    }
  }
}`;
