namespace Packet.Agent.Exec;

/// <summary>What the agent replaces itself with: the resolved program, its argv, its environment.</summary>
public sealed record ExecPlan(string Path, IReadOnlyList<string> Arguments, IReadOnlyList<string> Environment);
