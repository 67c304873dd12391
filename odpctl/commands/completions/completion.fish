
# __odpctl_candidates: what may come at the cursor, one a line, with a tab and
# a description where there is one.
function __odpctl_candidates
    set -l words (commandline -opc)
    set -e words[1]
    # The token as typed; its completions are matched unquoted and unescaped.
    set -l cur (commandline -ct | string replace -r '^[\'"]' '' | string replace -ar '\\\\(.)' '$1')
    set -l cmd odpctl
    set -l want ''
    set -l pos
    set -l global
    for w in $words
        if test -n "$want"
            test "$cmd" = odpctl; and set -a global $want $w
            set want ''
        else if string match -qr -- '^-.' $w
            if not string match -q -- '*=*' $w; and set -q (__odpctl_var val $cmd $w)
                set want $w
            end
            test "$cmd" = odpctl; and string match -q -- '*=*' $w; and set -a global $w
        else if test (count $pos) -eq 0; and contains -- $w (__odpctl_names (__odpctl_var sub $cmd))
            set cmd "$cmd $w"
        else
            set -a pos $w
        end
    end
    set -l kinds
    set -l prefix ''
    if test -n "$want"
        set -l var (__odpctl_var val $cmd $want)
        set kinds (string split , -- $$var)
    else if string match -qr -- '^--[^=]*=' $cur
        set -l opt (string replace -r '=.*' '' -- $cur)
        set -l var (__odpctl_var val $cmd $opt)
        if set -q $var
            set kinds (string split , -- $$var)
            set prefix "$opt="
            set cur (string replace -r '^[^=]*=' '' -- $cur)
        end
    else if string match -q -- '-*' $cur
        set kinds options
    else if set -q (__odpctl_var sub $cmd)
        set kinds commands
    else
        set -l var (__odpctl_var pos $cmd)
        set -l slots
        set -q $var; and set slots $$var
        set -l k (math (count $pos) + 1)
        if test $k -gt (count $slots)
            set -q (__odpctl_var rep $cmd); and set k (count $slots); or set k 0
        end
        test $k -gt 0; and set kinds (string split , -- $slots[$k])
    end
    for kind in $kinds
        switch $kind
            case options
                set -l var (__odpctl_var opts $cmd)
                string join \n -- $$var
            case commands
                set -l var (__odpctl_var sub $cmd)
                string join \n -- $$var
            case 'choice:*'
                string split '|' -- (string replace 'choice:' '' -- $kind)
            case choice
                set -l var (__odpctl_var choices $cmd)
                string join \n -- $$var
            case dp
                string match -qr '[(,]' -- $cur; or odpctl $global @NAMES@ dp 2>/dev/null
            case port
                odpctl $global @NAMES@ port $pos[1] 2>/dev/null
            case iface
                path basename /sys/class/net/* 2>/dev/null
            case netns
                path basename /run/netns/* 2>/dev/null
            case flow
                __odpctl_flow $cur
            case file
                __fish_complete_path $cur
        end | string replace -r '^' -- "$prefix"
    end
end

# __odpctl_var KIND PATH [OPTION]: the name of the variable holding KIND for PATH.
function __odpctl_var
    set -l key (string join ' ' -- $argv[2..])
    string join _ -- __odpctl $argv[1] (string replace -ar '[^A-Za-z0-9]' _ -- $key)
end

function __odpctl_names
    set -q $argv[1]; or return
    set -l var $argv[1]
    string replace -r '\t.*' '' -- $$var
end

# __odpctl_flow TEXT: flow key completions: attribute names, or the fields of
# the attribute whose parentheses are open.
function __odpctl_flow
    set -l text $argv[1]
    set -l chars (string split '' -- $text)
    set -l open
    set -l cut 0
    for i in (seq (count $chars))
        switch $chars[$i]
            case '('
                set -a open $i
                set cut $i
            case ')'
                set -e open[-1]
                set cut $i
            case ','
                set cut $i
        end
    end
    set -l head (string sub -l $cut -- $text)
    test $cut -eq 0; and set head ''
    if test (count $open) -eq 0
        for attr in $__odpctl_attrs
            echo "$head$attr("
        end
    else if test (count $open) -eq 1
        set -l attr (string sub -l (math $open[1] - 1) -- $text | string replace -r '.*[,(]' '')
        set -l var __odpctl_fields_$attr
        set -q $var; or return
        for f in $$var
            echo "$head$f="
        end
    end
end

complete -c odpctl -f -a '(__odpctl_candidates)'
