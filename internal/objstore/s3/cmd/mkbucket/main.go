// Command mkbucket creates an S3 bucket, waiting for the server to come
// up first. `scripts/services s3` uses it to prepare the test bucket on a
// freshly started local S3-compatible server, where no aws CLI exists.
//
//	go run ./internal/objstore/s3/cmd/mkbucket -endpoint http://127.0.0.1:7070 floe-test
//
// Credentials come from the standard AWS chain (AWS_ACCESS_KEY_ID and
// AWS_SECRET_ACCESS_KEY). A bucket that already exists and belongs to
// the caller is not an error. It is a development tool: never part of an
// agent.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/floe-io/floe/internal/objstore"
	"github.com/floe-io/floe/internal/objstore/s3"
)

func main() {
	endpoint := flag.String("endpoint", "", "S3 endpoint URL (empty: AWS)")
	region := flag.String("region", "", "region (empty: AWS configuration, else us-east-1)")
	pathStyle := flag.Bool("path-style", true, "path-style requests")
	wait := flag.Duration("wait", 30*time.Second, "how long to wait for the server to answer")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: mkbucket [flags] BUCKET\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*endpoint, *region, *pathStyle, flag.Arg(0), *wait); err != nil {
		fmt.Fprintln(os.Stderr, "mkbucket:", err)
		os.Exit(1)
	}
}

func run(endpoint, region string, pathStyle bool, bucket string, wait time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	b, err := s3.Open(ctx, s3.Options{Bucket: bucket, Endpoint: endpoint, Region: region, PathStyle: pathStyle})
	if err != nil {
		return err
	}
	for {
		err = create(ctx, b.Client(), bucket)
		if err == nil || !objstore.IsRetriable(err) {
			return err
		}
		// The server is still starting (connection refused) or busy.
		select {
		case <-ctx.Done():
			return fmt.Errorf("server did not answer within %v: %w", wait, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func create(ctx context.Context, client *awss3.Client, bucket string) error {
	_, err := client.CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: aws.String(bucket)})
	var owned *types.BucketAlreadyOwnedByYou
	if err == nil || errors.As(err, &owned) {
		return nil
	}
	return fmt.Errorf("create bucket %s: %w", bucket, err)
}
