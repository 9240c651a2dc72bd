namespace MoeSharp.Cli.Commands;

/// <summary>
/// A usage error found on every rank of an MPI job: rank 0 prints it, the other ranks exit with the usage
/// error code without printing, so the job's output holds the line once.
/// </summary>
internal sealed class ReportedByRankZeroException(string message) : Exception(message);
