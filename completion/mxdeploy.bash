# bash completion for mxdeploy. Options come from `mxdeploy --help` at completion time (so they
# follow the binary in use); `mxdeploy run` completes the names of the scripts it can run (the
# *.lua files in $MXDEPLOY_PATH and in the binary's shipped scripts directory); script arguments
# and file options complete file names.

# Options listed in the --help section whose heading starts with $2, for the binary $1.
_mxdeploy_options() {
  "$1" --help 2>/dev/null | awk -v sec="$2" '
    /^[^ ]/ { on = index($0, sec) == 1; next }
    on && /^  -/ { print $1 }'
}

# Names of the scripts `mxdeploy run` finds, for the binary $1.
_mxdeploy_scripts() {
  local bin dirs=() d f
  bin=$(command -v "$1" 2>/dev/null) || return 0
  bin=$(readlink -f "$bin")
  [ -n "${MXDEPLOY_PATH:-}" ] && IFS=: read -ra dirs <<< "$MXDEPLOY_PATH"
  # the binary's own answer (a build's binary uses its source tree), else the installed layout
  d=$("$bin" -E -e 'print(require("mxdeploy.host.paths").scripts)' 2>/dev/null) ||
    d="${bin%/*}/../share/mxdeploy/scripts"
  dirs+=("$d")
  for d in "${dirs[@]}"; do
    for f in "$d"/*.lua; do
      [ -f "$f" ] && f=${f##*/} && printf '%s\n' "${f%.lua}"
    done
  done | LC_ALL=C sort -u
}

# Completion candidates for the words "$@" (the last one is being completed), one a line;
# the single line "<files>" asks for file names.
_mxdeploy_candidates() {
  local bin=$1 n=$# i=2 mode=main w
  local cur=${!n} prev=""
  [ "$n" -gt 1 ] && { local p=$((n - 1)); prev=${!p}; }
  while [ "$i" -lt "$n" ]; do
    w=${!i}
    case $w in
      sandbox) [ "$i" -eq 2 ] && { mode=sandbox; break; }; mode=script; break ;;
      run) mode=run; break ;;
      -e | -l) i=$((i + 1)) ;;
      --) mode=script; i=$((i + 1)); break ;;
      -*) ;;
      *) mode=script; break ;;
    esac
    i=$((i + 1))
  done
  case $mode in
    sandbox)
      case $prev in
        --state | --log | --seed | --faults | --tls-cert | --tls-key) echo "<files>" ;;
        --port | --files-port | --time-scale) ;;
        *) _mxdeploy_options "$bin" "Options of mxdeploy sandbox" ;;
      esac ;;
    run)
      if [ $((i + 1)) -eq "$n" ]; then _mxdeploy_scripts "$bin"; else echo "<files>"; fi ;;
    script) echo "<files>" ;;
    main)
      case $prev in
        -e | -l) return 0 ;;
      esac
      if [[ $cur == -* ]]; then
        _mxdeploy_options "$bin" "Options of mxdeploy ("
        _mxdeploy_options "$bin" "Options as in lua5.4"
      else
        [ "$n" -eq 2 ] && echo sandbox
        echo run
        echo "<files>"
      fi ;;
  esac
}

_mxdeploy() {
  local cur=${COMP_WORDS[COMP_CWORD]} words=() c
  COMPREPLY=()
  while IFS= read -r c; do
    if [ "$c" = "<files>" ]; then
      local IFS=$'\n'
      COMPREPLY+=($(compgen -f -- "$cur"))
      unset IFS
    else
      [[ $c == "$cur"* ]] && COMPREPLY+=("$c")
    fi
  done < <(_mxdeploy_candidates "${COMP_WORDS[@]:0:COMP_CWORD+1}")
  compopt -o filenames 2>/dev/null
  return 0
}
complete -F _mxdeploy mxdeploy
