# Sourced by the test scripts: the skip policy of tests/testutil.h for shell.
# ci_on: whether CI is set to anything but "", "0", "false" or "no" (in any case).
ci_on() {
    case $(printf '%s' "${CI:-}" | tr '[:upper:]' '[:lower:]') in
        ""|0|false|no) return 1 ;;
    esac
    return 0
}
# ci_skip TEST WHY: prints "SKIP: TEST: WHY"; returns 0, or 1 under CI (a skip is a failure
# there: CI installs everything the tests need).
ci_skip() {
    if ci_on; then echo "SKIP: $1: $2 (a skip is a failure under CI=$CI)"; return 1; fi
    echo "SKIP: $1: $2"
}
# have_fashion_mnist: whether the library will find Fashion-MNIST (Debian's
# dataset-fashion-mnist, or FOOLC_FASHION_MNIST_DIR).
have_fashion_mnist() {
    d=${FOOLC_FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}
    [ -r "$d/t10k-images-idx3-ubyte.gz" ] || [ -r "$d/t10k-images-idx3-ubyte" ]
}
