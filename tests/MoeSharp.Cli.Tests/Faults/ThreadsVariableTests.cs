using System.Diagnostics;

namespace MoeSharp.Tests.Faults;

/// <summary>
/// A bad <c>MOESHARP_THREADS</c> is a usage error of every command. It is read once per process, so each case runs
/// <c>moe</c> as a child process with the variable set.
/// </summary>
public class ThreadsVariableTests
{
    [Theory]
    [InlineData("0", "run", "--tokens", "64")]
    [InlineData("abc", "train", "--steps", "1")]
    [InlineData("-1", "run", "--tokens", "64", "--world", "2")]
    [InlineData("100000", "bench", "--tokens", "64", "--dim", "16", "--experts", "8", "--top-k", "2")]
    public async Task BadValue_IsOneLineAndExitCode2(string value, params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardError = true, RedirectStandardOutput = true };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "moe.dll"));
        foreach (string a in args)
            start.ArgumentList.Add(a);
        start.Environment["MOESHARP_THREADS"] = value;
        using Process process = Process.Start(start)!;
        Task<string> output = process.StandardOutput.ReadToEndAsync();
        string error = await process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        await output;
        Assert.True(process.ExitCode == 2, $"exit {process.ExitCode}: {error}");
        Assert.Equal(
            $"moe: environment variable MOESHARP_THREADS='{value}' must be a whole number from 1 to 4096",
            error.Trim()
        );
    }
}
