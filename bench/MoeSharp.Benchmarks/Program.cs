using BenchmarkDotNet.Running;

namespace MoeSharp.Benchmarks;

/// <summary>Entry point: pick benchmarks with <c>--filter</c> (see bench/README.md).</summary>
public static class Program
{
    /// <summary>Runs the benchmarks that the arguments select.</summary>
    public static void Main(string[] args) => BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
}
