/* One X(name) per Check suite; tests/check_<name>.c defines Suite *foolc_suite_<name>(void). */
X(status)
X(distance)
X(criterion)
X(model)
X(attack)
X(data)
X(net)
