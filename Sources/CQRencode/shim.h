#ifndef FEDLOGIN_CQRENCODE_SHIM_H
#define FEDLOGIN_CQRENCODE_SHIM_H
#include <qrencode.h>
#endif
