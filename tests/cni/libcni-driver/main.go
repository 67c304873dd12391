// libcni-driver runs a CNI network configuration list through libcni, the
// library containerd and CRI-O run plugins with, so that odpctl-cni is tested
// by a real CNI client rather than a harness of our own.
//
//	libcni-driver add|check|del|validate -conflist FILE -netns PATH -id ID [-ifname eth0]
//	    [-path DIR:DIR] [-cache DIR] [-args K=V;K=V]
//
// add prints the result (in the list's cniVersion) on stdout. A failure prints
// {"code": N, "msg": "...", "details": "..."} on stdout (code 0 when libcni
// itself failed, before or after any plugin) and exits 1.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
)

func main() {
	if len(os.Args) < 2 {
		fail(errors.New("usage: libcni-driver add|check|del|validate -conflist FILE ..."))
	}
	action := os.Args[1]
	flags := flag.NewFlagSet(action, flag.ExitOnError)
	conflist := flags.String("conflist", "", "network configuration list (JSON)")
	netns := flags.String("netns", "", "the container's network namespace (a path)")
	id := flags.String("id", "", "container ID")
	ifname := flags.String("ifname", "eth0", "interface name in the container")
	path := flags.String("path", os.Getenv("CNI_PATH"), "plugin directories, colon-separated")
	cache := flags.String("cache", "", "libcni's cache directory (results kept for CHECK and DEL)")
	args := flags.String("args", "", "CNI_ARGS: K=V;K=V")
	if err := flags.Parse(os.Args[2:]); err != nil {
		fail(err)
	}

	list, err := libcni.ConfListFromFile(*conflist)
	if err != nil {
		fail(err)
	}
	cni := libcni.NewCNIConfigWithCacheDir(filepath.SplitList(*path), *cache, nil)
	rt := &libcni.RuntimeConf{ContainerID: *id, NetNS: *netns, IfName: *ifname, CacheDir: *cache}
	for _, kv := range strings.Split(*args, ";") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			rt.Args = append(rt.Args, [2]string{k, v})
		}
	}

	ctx := context.Background()
	switch action {
	case "add":
		result, err := cni.AddNetworkList(ctx, list, rt)
		if err != nil {
			fail(err)
		}
		if err := result.PrintTo(os.Stdout); err != nil {
			fail(err)
		}
	case "check":
		err = cni.CheckNetworkList(ctx, list, rt)
	case "del":
		err = cni.DelNetworkList(ctx, list, rt)
	case "validate":
		_, err = cni.ValidateNetworkList(ctx, list)
	default:
		err = fmt.Errorf("unknown action %q (add, check, del, validate)", action)
	}
	if err != nil {
		fail(err)
	}
}

func fail(err error) {
	report := &types.Error{Msg: err.Error()}
	var cniErr *types.Error
	if errors.As(err, &cniErr) {
		report = cniErr
	}
	out, _ := json.Marshal(report)
	fmt.Println(string(out))
	os.Exit(1)
}
