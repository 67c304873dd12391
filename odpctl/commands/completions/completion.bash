
# _odpctl_split TEXT: the words of TEXT as the command will get them, quotes
# removed, in _odpctl_words (the last is the word being typed, maybe empty);
# the quote left open at the end, if any, in _odpctl_quote.
_odpctl_split() {
    local text=$1 c word="" quote="" inword=0 i
    _odpctl_words=()
    for ((i = 0; i < ${#text}; i++)); do
        c=${text:i:1}
        if [[ -n $quote ]]; then
            if [[ $c == "$quote" ]]; then
                quote=""
            elif [[ $c == '\' && $quote == '"' ]]; then
                i=$((i + 1)); word+=${text:i:1}
            else
                word+=$c
            fi
        elif [[ $c == "'" || $c == '"' ]]; then
            quote=$c inword=1
        elif [[ $c == '\' ]]; then
            i=$((i + 1)); word+=${text:i:1}; inword=1
        elif [[ $c == [[:space:]] ]]; then
            ((inword)) && _odpctl_words+=("$word")
            word="" inword=0
        else
            word+=$c inword=1
        fi
    done
    _odpctl_words+=("$word")
    _odpctl_quote=$quote
}

# _odpctl_flow TEXT: flow key completions of TEXT: attribute names, or inside
# attr(...) the fields of attr.
_odpctl_flow() {
    local text=$1 c cut=0 i attr f
    local -a open=()
    for ((i = 0; i < ${#text}; i++)); do
        c=${text:i:1}
        case $c in
            '(') open+=("$i"); cut=$((i + 1)) ;;
            ')') ((${#open[@]})) && unset 'open[${#open[@]}-1]'; cut=$((i + 1)) ;;
            ',') cut=$((i + 1)) ;;
        esac
    done
    local head=${text:0:cut}
    if ((${#open[@]} == 0)); then
        for attr in $_odpctl_attrs; do _odpctl_cands+=("$head$attr("); done
    elif ((${#open[@]} == 1)); then
        attr=${text:0:${open[0]}}
        attr=${attr##*[,(]}
        for f in ${_odpctl_fields[$attr]-}; do _odpctl_cands+=("$head$f="); done
    fi
}

_odpctl() {
    local -a _odpctl_words _odpctl_cands=() pos=() global=()
    local _odpctl_quote
    _odpctl_split "${COMP_LINE:0:COMP_POINT}"
    local n=${#_odpctl_words[@]}
    local cur=${_odpctl_words[n - 1]} cmd=odpctl want="" w i kinds kind prefix=""
    for ((i = 1; i < n - 1; i++)); do
        w=${_odpctl_words[i]}
        if [[ -n $want ]]; then
            [[ $cmd == odpctl ]] && global+=("$want" "$w")
            want=""
        elif [[ $w == -?* ]]; then
            [[ $w != *=* && -n ${_odpctl_vals["$cmd $w"]+set} ]] && want=$w
            [[ $cmd == odpctl && $w == *=* ]] && global+=("$w")
        elif [[ ${#pos[@]} -eq 0 && " ${_odpctl_sub[$cmd]-} " == *" $w "* ]]; then
            cmd="$cmd $w"
        else
            pos+=("$w")
        fi
    done
    if [[ -n $want ]]; then
        kinds=${_odpctl_vals["$cmd $want"]}
    elif [[ $cur == --*=* && -n ${_odpctl_vals["$cmd ${cur%%=*}"]+set} ]]; then
        kinds=${_odpctl_vals["$cmd ${cur%%=*}"]}
        prefix=${cur%%=*}= cur=${cur#*=}
    elif [[ $cur == -* ]]; then
        kinds=options
    elif [[ -n ${_odpctl_sub[$cmd]+set} ]]; then
        kinds=commands
    else
        local -a slots=(${_odpctl_pos[$cmd]-})
        local k=${#pos[@]}
        if ((k >= ${#slots[@]})); then
            [[ -n ${_odpctl_rep[$cmd]-} ]] && k=$((${#slots[@]} - 1)) || k=-1
        fi
        ((k >= 0)) && kinds=${slots[k]}
    fi
    local nospace=0 files=0
    local IFS=$' \t\n'
    for kind in ${kinds//,/ }; do
        case $kind in
            options) _odpctl_cands+=(${_odpctl_opts[$cmd]-}) ;;
            commands) _odpctl_cands+=(${_odpctl_sub[$cmd]}) ;;
            choice:*) kind=${kind#choice:}; _odpctl_cands+=(${kind//|/ }) ;;
            choice) _odpctl_cands+=(${_odpctl_choices[$cmd]-}) ;;
            dp) [[ $cur != *[\(,]* ]] &&
                    _odpctl_cands+=($(odpctl "${global[@]}" @NAMES@ dp 2>/dev/null)) ;;
            port) _odpctl_cands+=($(odpctl "${global[@]}" @NAMES@ port "${pos[0]-}" 2>/dev/null)) ;;
            iface) _odpctl_cands+=($(ls /sys/class/net 2>/dev/null)) ;;
            netns) _odpctl_cands+=($(ls /run/netns 2>/dev/null)) ;;
            flow) _odpctl_flow "$cur"; nospace=1 ;;
            file) files=1 ;;
        esac
    done
    COMPREPLY=()
    if ((files)); then
        compopt -o filenames 2>/dev/null
        COMPREPLY=($(compgen -f -- "$cur"))
        return 0
    fi
    # Readline replaces only the end of the word after its last break character
    # (COMP_WORDBREAKS has ( : = ...), or after an open quote; trim to match.
    local word=$prefix$cur strip=0
    if [[ -z $_odpctl_quote ]]; then
        for ((i = ${#word} - 1; i >= 0; i--)); do
            [[ $COMP_WORDBREAKS == *"${word:i:1}"* ]] && { strip=$((i + 1)); break; }
        done
    fi
    local c full
    for c in "${_odpctl_cands[@]}"; do
        full=$prefix$c
        [[ $c == "$cur"* ]] && COMPREPLY+=("${full:strip}")
    done
    if ((nospace)) || [[ ${#COMPREPLY[@]} -eq 1 && ${COMPREPLY[0]} == *[=\(] ]]; then
        compopt -o nospace 2>/dev/null
        # Inside an open quote readline closes it after a unique match, which
        # would end the flow text half-way: make the match look not unique.
        [[ -n $_odpctl_quote && ${#COMPREPLY[@]} -eq 1 ]] && COMPREPLY+=("${COMPREPLY[0]} ")
    fi
    return 0
}

complete -F _odpctl odpctl
