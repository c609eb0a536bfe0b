// cni-gc: libcni's GCNetworkList with a valid-attachments list, which cnitool cannot pass
// (cnitool v1.3's `gc` calls GCNetworkList(ctx, list, nil): it DELs every attachment in libcni's
// cache for the network, then sends GC without cni.dev/valid-attachments).
//
//	cni-gc <net> [<containerID>/<ifname> ...]
//
// NETCONFPATH, CNI_PATH as for cnitool; CNI_CACHE_DIR (default libcni's /var/lib/cni) is where
// libcni keeps the results of ADD. Like a runtime, libcni first DELs every cached attachment of the
// network that is not in the list, then (cniVersion >= 1.1.0) calls each plugin's GC with
// cni.dev/valid-attachments set to the list.
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: cni-gc <net> [<containerID>/<ifname> ...]")
		os.Exit(2)
	}
	netdir := os.Getenv("NETCONFPATH")
	if netdir == "" {
		netdir = "/etc/cni/net.d" // cnitool's default
	}
	list, err := libcni.LoadConfList(netdir, os.Args[1])
	if err != nil {
		fail(err)
	}
	valid := []types.GCAttachment{}
	for _, a := range os.Args[2:] {
		cid, ifname, ok := strings.Cut(a, "/")
		if !ok || cid == "" || ifname == "" {
			fail(fmt.Errorf("attachment %q: want <containerID>/<ifname>", a))
		}
		valid = append(valid, types.GCAttachment{ContainerID: cid, IfName: ifname})
	}
	cni := libcni.NewCNIConfigWithCacheDir(filepath.SplitList(os.Getenv("CNI_PATH")), os.Getenv("CNI_CACHE_DIR"), nil)
	fail(cni.GCNetworkList(context.Background(), list, &libcni.GCArgs{ValidAttachments: valid}))
}

func fail(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
