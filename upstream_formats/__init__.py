"""The formats of the programs we configure, as pure functions: the bottom layer.

atticd's durations (humantime), cache names and JWTs, and Kubernetes quantities. The config
model, the construct library and the tools all check values against these rules, so they live
below all three and import only the standard library (PyJWT and cryptography are imported
lazily, by the token functions that sign or verify).
"""
