"""The organisation tree: district › street › community › grid."""
