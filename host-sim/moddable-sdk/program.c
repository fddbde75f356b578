/*
 * main() for the command-line programs this project builds with the Moddable
 * SDK (mcconfig -p x-cli-lin): the device check (test/sdk/) and the SDK bench
 * (bench/sdk/). The SDK's x-cli platforms leave main() to the app; this one
 * clones the prepared machine, gives JavaScript a few host functions (module
 * "sdk-host": stdout, a monotonic microsecond clock, files, arguments) and
 * imports the app's "main" module. A thrown exception exits 1 with its message.
 * A program that waits for sockets and timers (the TLS check) calls loop():
 * after its main module has run, main() then turns the GLib main context
 * (where the lin timers, TCP sockets and promise jobs of the x-cli-lin
 * platform are scheduled) until the program calls exit(code).
 *
 * Why C host functions: on lin the SDK's Time.ticks is in milliseconds and
 * there is no compute meter, and an x-cli program has no console or file
 * module of its own.
 */

#include "xsAll.h"
#include "mc.xs.h"
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <glib.h>

static int gArgc;
static char **gArgv;
static int gLoop = 0;
static int gDone = 0;
static int gExitCode = 0;

void fxAbort(xsMachine *the, int status)
{
	/* status: XS_NOT_ENOUGH_MEMORY_EXIT = 1 (raise creation in the manifest), 2 stack overflow, 5 unhandled exception ... (xs.h) */
	fprintf(stderr, "### XS abort %d%s\n", status, status == 1 ? " (not enough memory)" : "");
	exit(2);
}

/* write(text): the text to stdout, unchanged (the caller adds newlines). */
void xs_sdk_write(xsMachine *the)
{
	fputs(xsToString(xsArg(0)), stdout);
}

/* micros(): monotonic microseconds, as a double. */
void xs_sdk_micros(xsMachine *the)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	xsResult = xsNumber((double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3);
}

/* readFile(path): the whole file as an ArrayBuffer; throws when it cannot be read. */
void xs_sdk_read_file(xsMachine *the)
{
	const char *path = xsToString(xsArg(0));
	FILE *f = fopen(path, "rb");
	long size;
	if (f == NULL) xsUnknownError("cannot open %s", path);
	if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
		fclose(f);
		xsUnknownError("cannot size %s", path);
	}
	xsResult = xsArrayBuffer(NULL, (txInteger)size);
	if (size > 0 && fread(xsToArrayBuffer(xsResult), 1, (size_t)size, f) != (size_t)size) {
		fclose(f);
		xsUnknownError("cannot read %s", path);
	}
	fclose(f);
}

/* argument(i): the i-th command-line argument after the program name, or undefined. */
void xs_sdk_argument(xsMachine *the)
{
	int i = xsToInteger(xsArg(0));
	if (i >= 0 && i + 1 < gArgc) xsResult = xsString(gArgv[i + 1]);
}

/* loop(): keep running the main context after the main module until exit(). */
void xs_sdk_loop(xsMachine *the)
{
	gLoop = 1;
}

/* exit(code): ends the main loop; the process exits with code. */
void xs_sdk_exit(xsMachine *the)
{
	gExitCode = xsToInteger(xsArg(0));
	gDone = 1;
}

/* gc(): a full garbage collection now (so memory() then counts what is live). */
void xs_sdk_gc(xsMachine *the)
{
	xsCollectGarbage();
}

/* memory(): the machine's XS memory counters, in bytes and slots. */
void xs_sdk_memory(xsMachine *the)
{
	xsResult = xsNewObject();
	xsSet(xsResult, xsID("chunks"), xsNumber((double)the->currentChunksSize));
	xsSet(xsResult, xsID("peakChunks"), xsNumber((double)the->peakChunksSize));
	xsSet(xsResult, xsID("slots"), xsNumber((double)the->currentHeapCount));
	xsSet(xsResult, xsID("peakSlots"), xsNumber((double)the->peakHeapCount));
	xsSet(xsResult, xsID("slotBytes"), xsNumber((double)sizeof(txSlot)));
}

int main(int argc, char *argv[])
{
	static txMachine root;
	int error = 0;
	txMachine *machine = &root;
	txPreparation *preparation = xsPreparation();

	gArgc = argc;
	gArgv = argv;
	c_memset(machine, 0, sizeof(txMachine));
	machine->preparation = preparation;
	machine->keyArray = preparation->keys;
	machine->keyCount = (txID)preparation->keyCount + (txID)preparation->creation.initialKeyCount;
	machine->keyIndex = (txID)preparation->keyCount;
	machine->nameModulo = preparation->nameModulo;
	machine->nameTable = preparation->names;
	machine->symbolModulo = preparation->symbolModulo;
	machine->symbolTable = preparation->symbols;
	machine->stack = &preparation->stack[0];
	machine->stackBottom = &preparation->stack[0];
	machine->stackTop = &preparation->stack[preparation->stackCount];
	machine->firstHeap = &preparation->heap[0];
	machine->freeHeap = &preparation->heap[preparation->heapCount - 1];
	machine->aliasCount = (txID)preparation->aliasCount;
	machine = fxCloneMachine(&preparation->creation, machine, "subline", NULL);

	xsBeginHost(machine);
	{
		xsVars(1);
		xsTry {
			xsResult = xsAwaitImport(preparation->main, XS_IMPORT_NAMESPACE);
		}
		xsCatch {
			fprintf(stderr, "### %s\n", xsToString(xsException));
			error = 1;
		}
	}
	xsEndHost(the);
	if (!error && gLoop) {
		while (!gDone)
			g_main_context_iteration(NULL, TRUE);
		error = gExitCode;
	}
	fflush(stdout);
	xsDeleteMachine(machine);
	return error;
}
