using Packet.Agent.Boot;
using Xunit;

namespace Packet.Agent.Tests;

/// <summary>How each planned change reads in the dry run: with and without its other path, and with its condition.</summary>
public sealed class PlannedChangeTests
{
    [Theory]
    [InlineData(ChangeKind.CreateDirectory, null, "create directory /w/.packet")]
    [InlineData(ChangeKind.WriteFile, null, "write /w/.packet")]
    [InlineData(ChangeKind.SetOwner, null, "set the owner of /w/.packet")]
    [InlineData(ChangeKind.SetOwner, "1000:1000", "set the owner of /w/.packet to 1000:1000")]
    [InlineData(ChangeKind.SetMode, null, "set the mode of /w/.packet")]
    [InlineData(ChangeKind.SetMode, "0700", "set the mode of /w/.packet to 0700")]
    [InlineData(ChangeKind.Link, "/w/home", "link /w/.packet to /w/home")]
    [InlineData(ChangeKind.Move, "/w/old", "move /w/.packet to /w/old")]
    [InlineData(ChangeKind.Remove, null, "remove /w/.packet")]
    [InlineData(ChangeKind.RemoveTree, null, "remove /w/.packet and everything in it")]
    [InlineData(ChangeKind.CopyTree, "/root", "copy /root into /w/.packet")]
    [InlineData(ChangeKind.Lock, null, "take the workspace lock /w/.packet")]
    [InlineData(ChangeKind.RunProgram, null, "run /w/.packet")]
    [InlineData(ChangeKind.RunProgram, "as uid 0", "run /w/.packet (as uid 0)")]
    [InlineData(ChangeKind.StartProcess, null, "start /w/.packet")]
    [InlineData(ChangeKind.StartProcess, "-f config", "start /w/.packet (-f config)")]
    [InlineData(ChangeKind.StopProcess, null, "stop /w/.packet")]
    [InlineData(ChangeKind.StopProcess, "pid 42", "stop /w/.packet (pid 42)")]
    [InlineData(ChangeKind.Exec, null, "replace the agent with /w/.packet")]
    [InlineData(ChangeKind.Exec, "sleep infinity", "replace the agent with /w/.packet (sleep infinity)")]
    public void Each_kind_reads_as_one_line(ChangeKind kind, string? other, string line)
    {
        Assert.Equal(line, new PlannedChange(kind, "/w/.packet", other).Describe());
        Assert.Equal($"{line}, once the copy is complete", new PlannedChange(kind, "/w/.packet", other, "once the copy is complete").Describe());
    }

    [Fact]
    public void The_shorthands_make_the_kind_they_name()
    {
        Assert.Equal(new PlannedChange(ChangeKind.CreateDirectory, "/d", Condition: "c"), PlannedChange.CreateDirectory("/d", "c"));
        Assert.Equal(new PlannedChange(ChangeKind.WriteFile, "/f", Condition: "c"), PlannedChange.WriteFile("/f", "c"));
        Assert.Equal(new PlannedChange(ChangeKind.Remove, "/f"), PlannedChange.Remove("/f"));
        Assert.Equal(new PlannedChange(ChangeKind.RunProgram, "/bin/p", "why"), PlannedChange.Run("/bin/p", "why"));
    }
}
