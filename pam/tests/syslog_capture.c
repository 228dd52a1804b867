/*
 * syslog_capture.so - test helper: with LD_PRELOAD, every syslog() line of
 * the process (pam_syslog included) is appended to the file named by
 * $FEDLOGIN_SYSLOG_CAPTURE as "PRIORITY<TAB>MESSAGE\n", so tests can read
 * what pam_fedlogin.so logs without a syslog daemon.
 */
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void vsyslog(int priority, const char *fmt, va_list ap);
void syslog(int priority, const char *fmt, ...);
void __vsyslog_chk(int priority, int flag, const char *fmt, va_list ap);
void __syslog_chk(int priority, int flag, const char *fmt, ...);

void vsyslog(int priority, const char *fmt, va_list ap)
{
	const char *path = getenv("FEDLOGIN_SYSLOG_CAPTURE");
	char *msg = NULL;
	int fd;

	if (path == NULL || vasprintf(&msg, fmt, ap) < 0)
		return;
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd >= 0) {
		dprintf(fd, "%d\t%s\n", priority & 7, msg);
		close(fd);
	}
	free(msg);
}

void syslog(int priority, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsyslog(priority, fmt, ap);
	va_end(ap);
}

void __vsyslog_chk(int priority, int flag, const char *fmt, va_list ap)
{
	(void)flag;
	vsyslog(priority, fmt, ap);
}

void __syslog_chk(int priority, int flag, const char *fmt, ...)
{
	va_list ap;

	(void)flag;
	va_start(ap, fmt);
	vsyslog(priority, fmt, ap);
	va_end(ap);
}
