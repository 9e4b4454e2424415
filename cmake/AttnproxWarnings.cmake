# attnprox_warnings(target): the project's warning set on a target of its own code (dependencies' headers are
# system headers and stay quiet). Errors too where ATTNPROX_WERROR is ON (tools/setup.sh and CI turn it on).
function(attnprox_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor
                                           -Wcast-align -Wunused -Woverloaded-virtual)
  if(ATTNPROX_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()
