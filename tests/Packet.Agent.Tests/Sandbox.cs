using System.Runtime.CompilerServices;
using Packet.Agent.TestSupport;

// No test here takes a minute: one that does is hung (under a mutant, say), and its host is ended.
[assembly: HangWatchdog(60)]

namespace Packet.Agent.Tests;

internal static class Sandbox
{
    /// <summary>Before any test: programs the tests start get scratch paths, never the machine's home or workspace.</summary>
    [ModuleInitializer]
#pragma warning disable CA2255 // A test assembly is the program here: its initializer must run before the first test.
    internal static void Enter() => TestSandbox.Enter();
#pragma warning restore CA2255
}
