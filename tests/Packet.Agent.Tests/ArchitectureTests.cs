using ArchUnitNET.Domain;
using ArchUnitNET.Fluent.Slices;
using ArchUnitNET.Loader;
using ArchUnitNET.xUnit;
using Xunit;

namespace Packet.Agent.Tests;

/// <summary>The agent's folders (one namespace each) as layers: docs/architecture.md draws them.</summary>
public sealed class ArchitectureTests
{
    private static readonly Architecture Agent = new ArchLoader().LoadAssemblies(typeof(Units).Assembly).Build();

    [Fact]
    public void No_folder_depends_on_another_that_depends_back_on_it()
    {
        SliceRuleDefinition.Slices().Matching("Packet.Agent.(*)").Should().BeFreeOfCycles().Check(Agent);
    }
}
