/*
 * Gives the C heap's free pages back to the kernel: glibc's malloc_trim(0).
 *
 * Why rrdns needs it: glibc keeps what is freed. Each thread that mallocs
 * gets its own arena (V8's four compile and GC workers, libuv's four fs
 * workers), and an arena only shrinks from its top. Reading 10,000 zone files
 * leaves ~10 MB of free but resident pages in those arenas and in the main
 * heap, measured with `gdb -p PID -ex 'call malloc_trim(0)'`: RSS went from
 * 117 to 107 MB. Node offers no call that does this, hence an addon.
 *
 * trimAsync(callback) runs malloc_trim on libuv's thread pool, so the
 * answering thread does not wait for the walk over every arena (it waits
 * only where it mallocs in an arena while that arena is being trimmed, as
 * with any other thread's malloc); callback(error, released) gets whether
 * any memory was given back. trim() does the same on the calling thread, for
 * start-up, before any socket is bound.
 *
 * Where there is no malloc_trim (musl, other platforms), `available` is
 * false and both report false without doing anything.
 */
#include <node_api.h>
#include <stdbool.h>
#include <stdlib.h>
#if defined(__GLIBC__)
#include <malloc.h>
#define HAVE_MALLOC_TRIM 1
#else
#define HAVE_MALLOC_TRIM 0
#endif

static bool trim_now(void) {
#if HAVE_MALLOC_TRIM
  return malloc_trim(0) == 1;
#else
  return false;
#endif
}

static napi_value js_trim(napi_env env, napi_callback_info info) {
  napi_value out;
  napi_get_boolean(env, trim_now(), &out);
  return out;
}

typedef struct {
  napi_async_work work;
  napi_ref callback;
  bool released;
} trim_job_t;

static void job_execute(napi_env env, void *data) {
  trim_job_t *job = data;
  job->released = trim_now();
}

static void job_complete(napi_env env, napi_status status, void *data) {
  trim_job_t *job = data;
  napi_value callback, global, argv[2];
  if (napi_get_reference_value(env, job->callback, &callback) == napi_ok && callback != NULL) {
    napi_get_global(env, &global);
    napi_get_null(env, &argv[0]);
    napi_get_boolean(env, status == napi_ok && job->released, &argv[1]);
    // A throwing callback is the caller's fault; N-API turns it into an uncaught exception, as for any callback.
    napi_call_function(env, global, callback, 2, argv, NULL);
  }
  napi_delete_reference(env, job->callback);
  napi_delete_async_work(env, job->work);
  free(job);
}

static napi_value js_trim_async(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], name;
  napi_valuetype type;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  if (argc < 1 || napi_typeof(env, argv[0], &type) != napi_ok || type != napi_function) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "trimAsync(callback): callback must be a function");
    return NULL;
  }
  trim_job_t *job = calloc(1, sizeof *job);
  if (job == NULL) {
    napi_throw_error(env, "ENOMEM", "trimAsync: out of memory");
    return NULL;
  }
  napi_create_string_utf8(env, "rrdns:malloc_trim", NAPI_AUTO_LENGTH, &name);
  if (napi_create_reference(env, argv[0], 1, &job->callback) != napi_ok ||
      napi_create_async_work(env, NULL, name, job_execute, job_complete, job, &job->work) != napi_ok) {
    if (job->callback) napi_delete_reference(env, job->callback);
    free(job);
    napi_throw_error(env, "ERR_NAPI", "trimAsync: could not queue the work");
    return NULL;
  }
  if (napi_queue_async_work(env, job->work) != napi_ok) {
    napi_delete_reference(env, job->callback);
    napi_delete_async_work(env, job->work);
    free(job);
    napi_throw_error(env, "ERR_NAPI", "trimAsync: could not queue the work");
    return NULL;
  }
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"trim", NULL, js_trim, NULL, NULL, NULL, napi_default, NULL},
      {"trimAsync", NULL, js_trim_async, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  napi_value available;
  napi_get_boolean(env, HAVE_MALLOC_TRIM, &available);
  napi_set_named_property(env, exports, "available", available);
  return exports;
}

NAPI_MODULE_INIT() { return init(env, exports); }
