# Project-wide compile flags: warnings, sanitizers, and the Boost 1.74 Asio workaround.
add_library(maild_flags INTERFACE)
target_compile_options(maild_flags INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wold-style-cast
  -Wcast-align -Wunused -Woverloaded-virtual -Wconversion
  -Wdouble-promotion -Wformat=2 -Wimplicit-fallthrough)
# Two GCC 12 false positives once inlining is on: Asio's coroutine frame
# allocator (awaitable_frame_base's operator new/delete pair) read as
# mismatched, and "literal" + std::string&& read as an overlapping memcpy
# (GCC bug 105651).
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
  target_compile_options(maild_flags INTERFACE -Wno-mismatched-new-delete -Wno-restrict)
endif()
# boost/asio/awaitable.hpp in Boost 1.74 uses std::exchange without including <utility>.
target_compile_options(maild_flags INTERFACE -include utility)
target_compile_definitions(maild_flags INTERFACE
  BOOST_ASIO_NO_DEPRECATED)
if(MAILD_WERROR)
  target_compile_options(maild_flags INTERFACE -Werror)
endif()
if(MAILD_SANITIZE)
  target_compile_options(maild_flags INTERFACE
    -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
  target_link_options(maild_flags INTERFACE -fsanitize=address,undefined)
endif()

# maild_module(name LIBS ...): a static library from every .cpp below the
# current folder; PUBLIC links in LIBS, PRIVATE links in PRIVATE_LIBS.
function(maild_module name)
  cmake_parse_arguments(M "" "" "LIBS;PRIVATE_LIBS;EXCLUDE" ${ARGN})
  file(GLOB_RECURSE sources CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*.cpp)
  foreach(pattern IN LISTS M_EXCLUDE)
    list(FILTER sources EXCLUDE REGEX "${pattern}")
  endforeach()
  add_library(${name} STATIC ${sources})
  target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR}/include ${PROJECT_SOURCE_DIR}/src)
  target_link_libraries(${name} PUBLIC maild_flags ${M_LIBS} PRIVATE ${M_PRIVATE_LIBS})
endfunction()

if(MAILD_SANITIZE)
  # -O1 keeps sanitized test runs quick without hiding what the sanitizers see.
  target_compile_options(maild_flags INTERFACE -O1)
endif()
if(MAILD_FUZZ)
  target_compile_options(maild_flags INTERFACE
    -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer)
  target_link_options(maild_flags INTERFACE -fsanitize=address,undefined)
endif()

# maild_asio_module(name LIBS ... [PRIVATE_LIBS ...] [EXCLUDE ...]): a maild_module whose code
# includes Asio. The first one made owns the precompiled header (Asio, Asio's SSL, spdlog);
# the others reuse it, so the 2-core build compiles those headers once.
function(maild_asio_module name)
  maild_module(${name} ${ARGN})
  target_link_libraries(${name} PUBLIC Boost::headers spdlog::spdlog OpenSSL::SSL OpenSSL::Crypto)
  get_property(owner GLOBAL PROPERTY MAILD_ASIO_PCH_OWNER)
  if(owner)
    target_precompile_headers(${name} REUSE_FROM ${owner})
  else()
    target_precompile_headers(${name} PRIVATE
      <boost/asio.hpp> <boost/asio/ssl.hpp> <spdlog/spdlog.h>)
    set_property(GLOBAL PROPERTY MAILD_ASIO_PCH_OWNER ${name})
  endif()
endfunction()
