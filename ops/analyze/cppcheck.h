/* cppcheck.h -- macro definitions cppcheck reads before every file (make analyze).
 *
 * cppcheck does not parse system headers (too slow, and not ours to check), so it does not
 * know jansson's iteration macros and stops at the first use ("unknown macro"). These
 * equivalents give it the same control flow: a loop that assigns the index/key and value. */
#define json_array_foreach(array, index, value)                                                    \
    for (index = 0; index < json_array_size(array) && (value = json_array_get(array, index));     \
         index++)
#define json_object_foreach(object, key, value)                                                    \
    for (key = json_object_iter_key(json_object_iter(object));                                     \
         key && (value = json_object_iter_value(json_object_key_to_iter(key)));                    \
         key = json_object_iter_key(json_object_iter_next(object, json_object_key_to_iter(key))))
