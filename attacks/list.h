/* The attack registry: one X(name) per attack, alphabetical; attacks/<name>.c defines
 * const foolc__attack_vt foolc__attack_<name>. */
X(fgsm)
