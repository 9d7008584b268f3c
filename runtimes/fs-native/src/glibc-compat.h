/*
 * Included before every source file (binding.gyp): the prebuilt addon must load with any glibc
 * Node 20 runs on (2.28 and later), and glibc 2.34 moved the pthread functions into libc under
 * a new symbol version. Linking against their older version, which every later glibc still
 * exports, keeps the binary's newest requirement at GLIBC_2.28 (fcntl64). prebuild.sh checks it.
 */
/* glibc itself is told by one of its own headers: including features.h here would fix the
   feature macros before the source defines _GNU_SOURCE. */
#if defined(__has_include) && (defined(__x86_64__) || defined(__aarch64__))
#if __has_include(<gnu/libc-version.h>)
#ifdef __x86_64__
#define FS_NATIVE_OLD_PTHREAD "GLIBC_2.2.5"
#else
#define FS_NATIVE_OLD_PTHREAD "GLIBC_2.17"
#endif
__asm__(".symver pthread_create,pthread_create@" FS_NATIVE_OLD_PTHREAD);
__asm__(".symver pthread_join,pthread_join@" FS_NATIVE_OLD_PTHREAD);
__asm__(".symver pthread_attr_setstacksize,pthread_attr_setstacksize@" FS_NATIVE_OLD_PTHREAD);
#endif
#endif
