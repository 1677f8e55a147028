/*
 * An LD_PRELOAD library for the fsync-fault test (crates/logbook/tests/fsync_fault.rs): once the
 * file named by LOGBOOK_TEST_FSYNC_FAULT_TRIGGER exists, every fsync and fdatasync fails with EIO,
 * as a failing disk or a lost network volume makes them fail. Before that they reach the kernel
 * unchanged (as direct system calls, so no lookup of the next definition is needed).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

static int fault_is_on(void) {
    const char *trigger = getenv("LOGBOOK_TEST_FSYNC_FAULT_TRIGGER");
    return trigger != NULL && access(trigger, F_OK) == 0;
}

int fsync(int fd) {
    if (fault_is_on()) {
        errno = EIO;
        return -1;
    }
    return (int)syscall(SYS_fsync, fd);
}

int fdatasync(int fd) {
    if (fault_is_on()) {
        errno = EIO;
        return -1;
    }
    return (int)syscall(SYS_fdatasync, fd);
}
