
_odpctl_flow() {
    local text=$1 c cut=0 i attr f
    local -a open
    for ((i = 1; i <= ${#text}; i++)); do
        c=${text[i]}
        case $c in
            '(') open+=($i); cut=$i ;;
            ')') (( ${#open} )) && open[-1]=(); cut=$i ;;
            ',') cut=$i ;;
        esac
    done
    local head=${text[1,cut]}
    (( cut == 0 )) && head=''
    if (( ${#open} == 0 )); then
        for attr in ${=_odpctl_attrs}; do reply+=("$head$attr("); done
    elif (( ${#open} == 1 )); then
        attr=${text[1,open[1]-1]}
        attr=${attr##*[,\(]}
        for f in ${=_odpctl_fields[$attr]}; do reply+=("$head$f="); done
    fi
}

_odpctl() {
    local -a pos global reply descr
    local cmd=odpctl want='' w i kinds kind cur=$PREFIX
    for ((i = 2; i < CURRENT; i++)); do
        w=${(Q)words[i]}
        if [[ -n $want ]]; then
            [[ $cmd == odpctl ]] && global+=($want $w)
            want=''
        elif [[ $w == -?* ]]; then
            [[ $w != *=* && -n ${_odpctl_vals[$cmd $w]} ]] && want=$w
            [[ $cmd == odpctl && $w == *=* ]] && global+=($w)
        elif (( ${#pos} == 0 )) && [[ " ${_odpctl_sub[$cmd]} " == *" $w "* ]]; then
            cmd="$cmd $w"
        else
            pos+=($w)
        fi
    done
    if [[ -n $want ]]; then
        kinds=${_odpctl_vals[$cmd $want]}
    elif [[ $cur == --*=* && -n ${_odpctl_vals[$cmd ${cur%%=*}]} ]]; then
        kinds=${_odpctl_vals[$cmd ${cur%%=*}]}
        compset -P '*='
        cur=$PREFIX
    elif [[ $cur == -* ]]; then
        kinds=options
    elif [[ -n ${_odpctl_sub[$cmd]} ]]; then
        kinds=commands
    else
        local -a slots=(${=_odpctl_pos[$cmd]})
        local k=$(( ${#pos} + 1 ))
        if (( k > ${#slots} )); then
            if [[ -n ${_odpctl_rep[$cmd]} ]]; then k=${#slots}; else k=0; fi
        fi
        (( k > 0 )) && kinds=${slots[k]}
    fi
    local nospace=0
    for kind in ${(s:,:)kinds}; do
        case $kind in
            options)
                descr=(${(f)_odpctl_optdescr[$cmd]})
                _describe -t options option descr && return 0 ;;
            commands)
                descr=(${(f)_odpctl_subdescr[$cmd]})
                _describe -t commands command descr && return 0 ;;
            choice:*) reply+=(${(s:|:)kind#choice:}) ;;
            choice) reply+=(${=_odpctl_choices[$cmd]}) ;;
            dp) [[ $cur != *[\(,]* ]] &&
                    reply+=(${(f)"$(odpctl $global @NAMES@ dp 2>/dev/null)"}) ;;
            port) reply+=(${(f)"$(odpctl $global @NAMES@ port ${pos[1]} 2>/dev/null)"}) ;;
            iface) reply+=(/sys/class/net/*(N:t)) ;;
            netns) reply+=(/run/netns/*(N:t)) ;;
            flow) _odpctl_flow "$cur"; nospace=1 ;;
            file) _files && return 0 ;;
        esac
    done
    (( ${#reply} )) || return 1
    if (( nospace )); then
        compadd -S '' -- $reply
    else
        compadd -- $reply
    fi
}

if [[ $funcstack[1] == _odpctl ]]; then
    _odpctl "$@"
else
    compdef _odpctl odpctl
fi
