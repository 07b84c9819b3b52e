// Machine networking: one host bridge, a veth per machine, NAT for outbound traffic, and
// nftables rules so that machines reach neither each other nor any of the host's own
// addresses (the server, its database, the agent sockets are all off limits).
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { runScript, runTool } from './host.js';

export interface NetworkConfig {
  bridge: string;
  /** Host-side veth names are this prefix plus the machine's slot; at most 15 characters. */
  vethPrefix: string;
  /** The first two octets of the machines' /16; the bridge is .0.1, slot N is .0.(N+2). */
  subnet: string;
}

export const defaultNetworkConfig: NetworkConfig = {
  bridge: 'snapvm0',
  vethPrefix: 'sv-',
  subnet: '10.77',
};

export function machineAddress(config: NetworkConfig, slot: number): string {
  const host = slot + 2;
  return `${config.subnet}.${host >> 8}.${host & 255}`;
}

export function vethName(config: NetworkConfig, slot: number): string {
  return `${config.vethPrefix}${slot}`;
}

function tables(config: NetworkConfig) {
  return {
    filter: `inet ${config.bridge}`,
    nat: `ip ${config.bridge}_nat`,
    l2: `bridge ${config.bridge}_l2`,
  };
}

function ruleset(config: NetworkConfig): string {
  const t = tables(config);
  const net = `${config.subnet}.0.0/16`;
  const veths = `${config.vethPrefix}*`;
  return `
table ${t.filter} {
  chain input {
    type filter hook input priority filter; policy accept;
    iifname "${config.bridge}" jump from_machine
  }
  # Every address of the host is reached through input, not forward: this one chain keeps
  # machines away from the bridge IP, eth0 and loopback-bound services alike.
  chain from_machine {
    ct state established,related accept
    ct state invalid drop
    meta l4proto icmp accept
    counter drop
  }
  chain forward {
    type filter hook forward priority filter; policy accept;
    iifname "${config.bridge}" oifname "${config.bridge}" counter drop
    oifname "${config.bridge}" ct state established,related accept
    oifname "${config.bridge}" counter drop
    iifname "${config.bridge}" ip saddr != ${net} counter drop
    iifname "${config.bridge}" ip daddr 169.254.0.0/16 counter drop
    iifname "${config.bridge}" accept
  }
}
table ${t.nat} {
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    ip saddr ${net} oifname != "${config.bridge}" masquerade
  }
}
table ${t.l2} {
  set machine_ip { type ifname . ipv4_addr; }
  chain prerouting {
    type filter hook prerouting priority filter; policy accept;
    iifname != "${veths}" accept
    ether type ip iifname . ip saddr != @machine_ip counter drop
    ether type arp iifname . arp saddr ip != @machine_ip counter drop
    ether type ip6 counter drop
  }
  chain forward {
    type filter hook forward priority filter; policy accept;
    iifname "${veths}" oifname "${veths}" counter drop
  }
}
`;
}

function forwardStateFile(config: NetworkConfig): string {
  return `/run/snapvm-${config.bridge}.ip_forward`;
}

/** Creates the bridge and the rules if they are missing; cheap when they exist. */
export async function ensureNetwork(config: NetworkConfig): Promise<void> {
  const t = tables(config);
  const listed = await runTool('nft', ['list', 'table', ...t.l2.split(' ')]);
  if (existsSync(`/sys/class/net/${config.bridge}`) && listed.code === 0) return;
  if ((await runTool('nft', ['--version'])).code !== 0) {
    throw new Error('nftables is not installed: run `apt-get install -y nftables`');
  }
  const stateFile = forwardStateFile(config);
  if (!existsSync(stateFile)) {
    writeFileSync(stateFile, readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8'));
  }
  await runScript(
    `[ -e /sys/class/net/${config.bridge} ] || ip link add ${config.bridge} type bridge
echo 1 > /proc/sys/net/ipv6/conf/${config.bridge}/disable_ipv6
ip addr replace ${config.subnet}.0.1/16 dev ${config.bridge}
ip link set ${config.bridge} up
for t in "${t.filter}" "${t.nat}" "${t.l2}"; do nft delete table $t 2>/dev/null || true; done
nft -f - <<'RULES'
${ruleset(config)}
RULES
echo 1 > /proc/sys/net/ipv4/ip_forward`,
    'setting up the machine network',
  );
}

/** Moves the machine's end of a new veth into its network namespace and configures both ends. */
export async function attachMachine(
  config: NetworkConfig,
  slot: number,
  initPid: number,
): Promise<void> {
  const veth = vethName(config, slot);
  const address = machineAddress(config, slot);
  // Batched: each exec costs milliseconds, and this is on every start's critical path.
  await runScript(
    `ip link del ${veth} 2>/dev/null || true
ip -batch - <<EOF
link add ${veth} type veth peer name eth0 netns ${initPid}
link set ${veth} master ${config.bridge} up
link set ${veth} type bridge_slave isolated on
EOF
nft add element ${tables(config).l2} machine_ip '{ "${veth}" . ${address} }'
nsenter --target ${initPid} --net ip -batch - <<EOF
link set lo up
addr add ${address}/16 dev eth0
link set eth0 up
route add default via ${config.subnet}.0.1
EOF`,
    'connecting the machine to the network',
  );
}

export async function detachMachine(config: NetworkConfig, slot: number): Promise<void> {
  const veth = vethName(config, slot);
  const address = machineAddress(config, slot);
  // The veth normally vanishes with the machine's network namespace; both steps tolerate that.
  await runScript(
    `ip link del ${veth} 2>/dev/null || true
nft delete element ${tables(config).l2} machine_ip '{ "${veth}" . ${address} }' 2>/dev/null || true`,
    'disconnecting the machine from the network',
  );
}

/** Removes the bridge and rules, but only once no machine is attached to the bridge. */
export async function teardownNetworkIfUnused(config: NetworkConfig): Promise<boolean> {
  const ports = `/sys/class/net/${config.bridge}/brif`;
  if (existsSync(ports) && readdirSync(ports).length > 0) return false;
  const t = tables(config);
  const stateFile = forwardStateFile(config);
  const restore = existsSync(stateFile) ? readFileSync(stateFile, 'utf8').trim() : '';
  await runScript(
    `for t in "${t.filter}" "${t.nat}" "${t.l2}"; do nft delete table $t 2>/dev/null || true; done
ip link del ${config.bridge} 2>/dev/null || true
${restore === '0' || restore === '1' ? `echo ${restore} > /proc/sys/net/ipv4/ip_forward` : ''}`,
    'removing the machine network',
  );
  rmSync(stateFile, { force: true });
  return true;
}
