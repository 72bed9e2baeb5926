<?xml version="1.0" encoding="utf-8"?>
<!DOCTYPE TS>
<TS version="2.1">
<context>
    <name>AgentBanner</name>
    <message>
        <source>Starting the SpareCycles agent…</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>The agent stopped answering; reconnecting…</source>
        <translation type="unfinished"></translation>
    </message>
</context>
<context>
    <name>AgentSettingsForm</name>
    <message>
        <source>Saved.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Nothing to save: nothing was changed.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Saving…</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Not saved: {}</source>
        <translation type="unfinished"></translation>
    </message>
</context>
<context>
    <name>AgentStep</name>
    <message>
        <source>Saving…</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>The agent refused: {}</source>
        <translation type="unfinished"></translation>
    </message>
</context>
<context>
    <name>AgentStoppedPanel</name>
    <message>
        <source>The SpareCycles agent stopped</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Restart the agent</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>The last lines of its log:</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>It could not be started. Nothing runs on your GPUs meanwhile.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Nothing runs on your GPUs until it is started again.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>(the agent wrote nothing to its log)</source>
        <translation type="unfinished"></translation>
    </message>
</context>
<context>
    <name>BenchmarkStep</name>
    <message>
        <source>Benchmark</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>A short measurement of each GPU (about a minute each) that marketplaces use to offer it work.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Run the benchmark</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Skip</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Benchmarking… this takes about a minute per GPU.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Measuring GPU {number} of {count}: about {seconds} s left for it.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>GPU {index} ({name}): score {score}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Done.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>The agent could not benchmark: {}
Skip this step: the agent benchmarks a real GPU by itself when it is idle and has no result yet.</source>
        <translation type="unfinished"></translation>
    </message>
</context>
<context>
    <name>ConfirmWalletDialog</name>
    <message>
        <source>Confirm wallet {name}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Type these words of the wallet&apos;s recovery phrase.</source>
        <translation type="unfinished"></translation>
    </message>
</context>
<context>
    <name>CreateWalletDialog</name>
    <message>
        <source>Create a wallet</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>e.g. main</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Create</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Name</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>I have written it down</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Your recovery phrase. Write it down on paper and keep it safe: it is shown only this once, and anyone with these words can take the wallet&apos;s funds.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Creating…</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Wallet {name}: {address}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>To check you wrote it down, type these words of the phrase.</source>
        <translation type="unfinished"></translation>
    </message>
</context>
<context>
    <name>DashboardPage</name>
    <message>
        <source>Dashboard</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Waiting for the agent…</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Leave studio</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Pause</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Pauses work on every GPU. To stop sharing one GPU for good, turn it off in Settings.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Resume</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Snooze</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>1 hour</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>4 hours</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Until tomorrow</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Today</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Gross</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Power cost</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Net</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>No NVIDIA GPU found.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Jobs on the CPU:</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Schedule set by {studio} (group {group}); your own stricter settings still apply.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>The studio is draining this computer: it finishes its job and takes no new one.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Paused by the studio until {time}.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>{pending} of it not yet covered by a voucher.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Net needs a tariff and a token rate (Settings).</source>
        <translation type="unfinished"></translation>
    </message>
</context>
<context>
    <name>EarningsChart</name>
    <message>
        <source>Point at a bar to read its figures.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Nothing recorded in this period.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>gross ({unit})</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>power cost ({unit})</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>net ({unit})</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>{bucket}: gross {gross}, power cost {cost}, net {net}</source>
        <translation type="unfinished"></translation>
    </message>
</context>
<context>
    <name>EarningsPage</name>
    <message>
        <source>Earnings</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>by day</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>by week</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>by month</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Refresh</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>from</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>to</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Filter jobs (any column: a date, a GPU, pending…)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Export CSV…</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Asking the agent what is claimable…</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Claim</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Payout vault</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>The period ends before it starts.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>no currency</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>{since} to {until}: gross {gross} {unit}, power cost {cost}, net {net} ({kwh} kWh of work)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Net is not shown: {why}.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>The ledger is not recording: {why}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Could not read the ledger: {why}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>tokens</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>base units</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Export the jobs as CSV</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>CSV files (*.csv)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Cannot write {file}: {why}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Wrote {n} jobs to {file}.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>no payout address yet</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Claimable: {amount} tokens, to {to}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>A claim is on its way: transaction {tx}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Nothing can be claimed here.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Claiming… (this waits for the transaction to be mined)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Claimed {amount} tokens to {to}: transaction {tx}.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>The marketplace was asked to send a claim of {amount} tokens to {to}; it pays the gas.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Claim of {amount} tokens sent, not mined yet: transaction {tx}.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>The claim was refused: {why}</source>
        <translation type="unfinished"></translation>
    </message>
</context>
<context>
    <name>ExportWalletDialog</name>
    <message>
        <source>Export wallet {name}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Show the secret</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Anyone who sees the secret can take the funds. Type “{expected}” to show it.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Recovery phrase ({path}):</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Private key:</source>
        <translation type="unfinished"></translation>
    </message>
</context>
<context>
    <name>FleetPage</name>
    <message>
        <source>Studio fleet</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>For a studio&apos;s operator: see every machine of the studio and act on one. Give the studio marketplace&apos;s address and an admin token (`sparecycles market admin-token NAME` on its machine).</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>admin token (sco_…), kept in the system keyring</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Connect</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Marketplace:</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Admin token:</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Machine</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Group</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>State</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Reason</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>GPUs</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Jobs</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Today</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Last seen</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Version</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Drain</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Finish the current job, take no new one.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Pause until…</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>1 hour</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>4 hours</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Until tomorrow morning</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Resume</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Cancel its job</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Give the marketplace&apos;s address (https://…) and an admin token.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>The token works for now but is not kept: {}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>{count} machine(s) in the studio.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>No machine has joined a group yet: `sparecycles market enrol-code --group NAME`.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>offline</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>paused until {time}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>no report yet</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>{state}, draining</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>End drain</source>
        <translation type="unfinished"></translation>
    </message>
</context>
<context>
    <name>GpuCard</name>
    <message>
        <source>SIMULATED</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Not a real GPU: the simulated backend of tests and demos.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>This GPU</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Pause or snooze this GPU alone; the others carry on.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Pause this GPU</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Resume this GPU</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Snooze this GPU 1 hour</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Snooze this GPU 4 hours</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Utilization</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>VRAM</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Temperature</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Power</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Job</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>GPU {index} · {name}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>{used} of {total} GiB</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>none</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>{job} · {state} for {elapsed}</source>
        <translation type="unfinished"></translation>
    </message>
</context>
<context>
    <name>ImportWalletDialog</name>
    <message>
        <source>Import a wallet</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Recovery phrase (12 to 24 words)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Private key (64 hexadecimal digits)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Import</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Name</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Secret</source>
        <translation type="unfinished"></translation>
    </message>
</context>
<context>
    <name>JobsTable</name>
    <message>
        <source>{s} s</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>{h} h {m:02d} min</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>{m} min</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Start</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Duration</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>GPU</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Energy (kWh)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Power cost</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Gross</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Net</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Voucher</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>confirmed</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>pending</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>unpaid</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>lease {lease}, job {job}</source>
        <translation type="unfinished"></translation>
    </message>
</context>
<context>
    <name>MachineStep</name>
    <message>
        <source>Your computer</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Waiting for the agent to report this computer&apos;s GPUs…</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>{index}: {name}{simulated}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source> (simulated)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>GPUs found:</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>No NVIDIA GPU found. {advice}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Jobs cannot run yet: {problem}&lt;br&gt;Docker and the NVIDIA Container Toolkit are needed; run &lt;code&gt;sparecycles doctor&lt;/code&gt; in a terminal for every check and the command that fixes it. You can finish this setup now and fix it later.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Docker and the NVIDIA Container Toolkit: ready to run jobs.</source>
        <translation type="unfinished"></translation>
    </message>
</context>
<context>
    <name>MainWindow</name>
    <message>
        <source>Dashboard</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Earnings</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Schedule</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Wallet</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Settings</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Studio fleet</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>SpareCycles {version}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>&amp;SpareCycles</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>&amp;Quit</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Stopping the SpareCycles agent…</source>
        <translation type="unfinished"></translation>
    </message>
</context>
<context>
    <name>MarketplaceStep</name>
    <message>
        <source>Marketplace</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>The private marketplace on this computer (your own jobs)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Join a studio: its marketplace&apos;s address and the enrolment code it gave you</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>enrolment code (sce_…)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>To join a studio, give its marketplace&apos;s address (https://…) and the code.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>A marketplace at this address:</source>
        <translation type="unfinished"></translation>
    </message>
</context>
<context>
    <name>Notifications</name>
    <message>
        <source>Work started after idle</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Paused because a game started</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>A GPU is too hot</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>A job failed</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>A claim succeeded</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>GPU too hot: work paused</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Paused for your game</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>this computer</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>SpareCycles started working</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>no reason given</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Your earnings were paid to {address}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Claim succeeded</source>
        <translation type="unfinished"></translation>
    </message>
</context>
<context>
    <name>OnboardingWizard</name>
    <message>
        <source>Set up SpareCycles</source>
        <translation type="unfinished"></translation>
    </message>
</context>
<context>
    <name>PayoutStep</name>
    <message>
        <source>Payouts</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Where your earnings are paid. The agent takes no work without a payout address.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Create a new wallet</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Import a wallet (recovery phrase or private key)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Only an address (a hardware wallet, another computer)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Later</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Create it and show the recovery phrase</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Recovery phrase or private key:</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Payout address:</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>You can add a payout wallet later on the Wallet page.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Wallet name:</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Write these words on paper and keep them safe; they are shown only now. Anyone with them can take the wallet&apos;s funds.

{}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Word {}:</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>The wallet was not created: {}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Create the wallet first, or choose another way.</source>
        <translation type="unfinished"></translation>
    </message>
</context>
<context>
    <name>SchedulePage</name>
    <message>
        <source>Schedule</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Pause for the built-in list of games</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>One program per line, e.g. blender.exe</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>no limit</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Save</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>When to work</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Programs that always pause work</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Limits</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Pause above:</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Power limit while working:</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Schedule set by {studio} (group {group}). What you set here still applies where it is stricter: shorter hours, a lower temperature or power limit, more games that pause work.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Could not read the schedule from the agent: {}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Saved: the agent follows the new schedule now.</source>
        <translation type="unfinished"></translation>
    </message>
</context>
<context>
    <name>SettingsPage</name>
    <message>
        <source>Settings</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Save</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>The private marketplace on this computer</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>The marketplace at:</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>In the payout token&apos;s base units per GPU-hour; 0: no floor beyond power.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Marketplace and prices</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Margin above electricity:</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Lowest price per GPU-hour:</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Never</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Only the addresses a job declares</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Let jobs reach this computer&apos;s own networks (a studio&apos;s servers)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>What jobs may do</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Network:</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Disk for job images:</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>GPUs to share</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Start SpareCycles when I log in</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>An autostart entry for your desktop session, written by the agent.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Follow the system</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Light</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Dark</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>This app</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Theme:</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Notify:</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Setup steps</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Welcome</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>This computer</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Marketplace</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Payouts</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Electricity</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>When to work</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Benchmark</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Could not read the settings from the agent: {}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>GPU {index}: {name}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>GPUs to share (none found)</source>
        <translation type="unfinished"></translation>
    </message>
</context>
<context>
    <name>TariffStep</name>
    <message>
        <source>Electricity and currency</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Earnings are shown net of electricity, and work is never bid below its cost.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>One price at all times</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Prices by time of day (a tariff file)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>e.g. 0.32 (leave empty to set it later)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>The text of a tariff file, see examples/tariff.toml</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>leave empty to set it later</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Price per kWh:</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Currency:</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Time zone:</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>One payout token is worth:</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>The token&apos;s decimals:</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>The price per kWh must be a number, like 0.32.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>A token&apos;s worth must be a number, like 1.00.</source>
        <translation type="unfinished"></translation>
    </message>
</context>
<context>
    <name>Today</name>
    <message>
        <source>not known yet</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>{gross} gross (no tariff or token rate set)</source>
        <translation type="unfinished"></translation>
    </message>
</context>
<context>
    <name>Tray</name>
    <message>
        <source>Pause</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Resume</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Snooze</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>1 hour</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>4 hours</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Until tomorrow</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Open dashboard</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Quit</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>SpareCycles</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Today: {net}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>the agent stopped</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>SpareCycles — {state}</source>
        <translation type="unfinished"></translation>
    </message>
</context>
<context>
    <name>WalletPage</name>
    <message>
        <source>Wallet</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Asking the agent for the wallets…</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Copy</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Payouts go to</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Create…</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Import…</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Watch…</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Confirm…</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Export…</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Use for payouts</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Remove…</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Refresh</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Wallets on this computer</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>The wallets are not known yet.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Could not read the wallets from the agent: {}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>recovery phrase</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>private key</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>watch-only</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>payouts</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>not confirmed</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>No payout wallet yet: create, import or watch one, then use it.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Wallet {name}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Asking the chain for the balances…</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Balance: {native}, {token}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Address copied.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Send the payouts to wallet {name} from now on? The marketplace is told.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Payouts now go to wallet {name}.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Delete wallet {name} and its key from the OS keyring? Without its recovery phrase written down, its funds are lost.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Wallet {name} removed.</source>
        <translation type="unfinished"></translation>
    </message>
</context>
<context>
    <name>WatchWalletDialog</name>
    <message>
        <source>Watch an address</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Add</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Name</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Address</source>
        <translation type="unfinished"></translation>
    </message>
</context>
<context>
    <name>WeekGrid</name>
    <message>
        <source>Drag to paint the hours SpareCycles may work; start on a painted hour to erase.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Mon</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Tue</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Wed</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Thu</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Fri</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Sat</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Sun</source>
        <translation type="unfinished"></translation>
    </message>
</context>
<context>
    <name>WelcomeStep</name>
    <message>
        <source>Welcome to SpareCycles</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>&lt;p&gt;SpareCycles rents out your NVIDIA GPU while you do not use it, and pays you for it.&lt;/p&gt;&lt;p&gt;&lt;b&gt;What it does:&lt;/b&gt; when you are away (or in hours you choose) it runs other people&apos;s jobs in sealed containers on your GPU; the moment you come back, or start a game, the work freezes or stops and the GPU is yours again. It shows what you earned and what the electricity cost.&lt;/p&gt;&lt;p&gt;&lt;b&gt;What it does not do:&lt;/b&gt; jobs cannot see your files, your other programs or your network (unless you allow a job&apos;s declared addresses); nothing runs as administrator; it never mines on its own, never overclocks, and your wallet&apos;s key never leaves the system keyring.&lt;/p&gt;</source>
        <translation type="unfinished"></translation>
    </message>
</context>
<context>
    <name>WordsForm</name>
    <message>
        <source>Confirm</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Word {n}</source>
        <translation type="unfinished"></translation>
    </message>
</context>
<context>
    <name>WorkWhenEditor</name>
    <message>
        <source>When I am away from the computer</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Only in the painted hours</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>When I am away, or in the painted hours</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>When I am away, but only in the painted hours</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source> min</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Work:</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Away after:</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Hours to work (drag to paint, start on a painted hour to erase):</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>The schedule could not be shown: {}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Scheduled: {}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>No hours painted.</source>
        <translation type="unfinished"></translation>
    </message>
</context>
<context>
    <name>WorkWhenStep</name>
    <message>
        <source>When to work</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Could not read the current settings from the agent: {}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>The current settings are not read yet; try again when the agent answers.</source>
        <translation type="unfinished"></translation>
    </message>
</context>
<context>
    <name>parent</name>
    <message>
        <source>Quit SpareCycles</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Stop the SpareCycles agent too?</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Left running, it keeps renting out your GPUs when they are idle, without this window.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Stop the agent</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Leave it running</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Leave the studio?</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>This computer stops following the studio&apos;s schedule and takes no more of its jobs.</source>
        <translation type="unfinished"></translation>
    </message>
</context>
<context>
    <name>widget</name>
    <message>
        <source>Ready for work</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Working</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Waiting</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Paused</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Snoozed</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Stopping</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Handed back to you</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Unavailable</source>
        <translation type="unfinished"></translation>
    </message>
</context>
</TS>
