//! [`criterion_suite!`](crate::criterion_suite): a bench target's criterion group and `main`.

/// A bench target's criterion group and `main`: the `targets` (functions taking
/// `&mut Criterion`) run with `config`.
///
/// The group sits in a private module: `criterion_group!` defines a `pub fn` it cannot
/// document, which the workspace's `missing_docs` refuses at a crate root but not inside a
/// private module. `config` and `targets` are named as at the bench's root (a target may be
/// called anything but `criterion_suite_group`, the group's own name).
#[macro_export]
macro_rules! criterion_suite {
    (config = $config:expr; targets = $($target:path),+ $(,)?) => {
        mod suite {
            use super::*;

            ::criterion::criterion_group! {
                name = criterion_suite_group;
                config = $config;
                targets = $($target),+
            }
        }

        ::criterion::criterion_main!(suite::criterion_suite_group);
    };
}
